from bibia.cli import main

main()
