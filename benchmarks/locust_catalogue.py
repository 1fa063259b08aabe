"""Locust's catalogue client (``benchmarks/load.py`` runs it headless; not a test).

One simulated visitor browses the public catalogue: the API's listing (a page
among the first ten, sometimes filtered), a model's entry, and the French
pages (home, catalogue, a model's page, the projects). Between two requests
it waits ``BIBIA_LOAD_WAIT_S`` seconds (a person reading; 0: as fast as the
service answers). Models are ``modele-00000`` ... ``modele-{BIBIA_LOAD_MODELS - 1}``.
"""

from __future__ import annotations

import os
import random

from locust import FastHttpUser, between, constant, task

MODELS = int(os.environ.get("BIBIA_LOAD_MODELS", "200"))
WAIT = float(os.environ.get("BIBIA_LOAD_WAIT_S", "1"))
PAGE = {"accept": "text/html"}


def _model() -> str:
    return f"modele-{random.randrange(MODELS):05d}"


class CatalogueVisitor(FastHttpUser):
    wait_time = between(WAIT / 2, WAIT * 1.5) if WAIT > 0 else constant(0)

    @task(4)
    def listing(self) -> None:
        page = random.randint(1, max(1, min(10, MODELS // 20)))
        self.client.get(f"/api/v1/models?per_page=20&page={page}", name="API liste")

    @task(1)
    def filtered(self) -> None:
        self.client.get("/api/v1/models?q=cantines&theme=education", name="API recherche")

    @task(3)
    def entry(self) -> None:
        self.client.get(f"/api/v1/models/{_model()}", name="API modèle")

    @task(1)
    def home(self) -> None:
        self.client.get("/", headers=PAGE, name="page accueil")

    @task(1)
    def catalogue(self) -> None:
        self.client.get("/catalogue", headers=PAGE, name="page catalogue")

    @task(1)
    def model_page(self) -> None:
        self.client.get(f"/modeles/{_model()}", headers=PAGE, name="page modèle")

    @task(1)
    def projects(self) -> None:
        self.client.get("/projets", headers=PAGE, name="page projets")
