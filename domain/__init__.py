"""The domain: what every layer of bibia shares and imports nothing of ours (the error tree)."""
