"""A shop's customers, for ``scenarios/exhaustion-locust.yaml`` (an ordinary Locust file).

Each customer browses the front page, looks at products, sometimes adds one to the cart.
Locust's ``HttpUser`` gives every user a ``requests`` Session, which pools connections: a
user keeps one keep-alive TCP connection and reuses it for every request. What makes
connections short-lived is the ``Connection: close`` header: the server answers and closes,
urllib3 finds the pooled connection dropped and opens a new one for the next request. So:

- ``ClosingShopper`` sends ``Connection: close`` on every request (as a client does that
  disables keep-alive, or a proxy that strips it): one new TCP connection per request, each
  leaving a conntrack entry in TIME_WAIT for 120 s on the node;
- ``KeepAliveShopper`` is the same customer with the Session's default keep-alive: one
  connection per user for the whole run.

The harness gives every user class its ``host`` (the http-server Service), as ``--host`` does.
"""

from __future__ import annotations

import random
from typing import ClassVar

from locust import HttpUser, between, task

PRODUCTS = 500
TIMEOUT = (2.0, 5.0)  # connect, read (s): a shop's client does not wait forever


class Shopper(HttpUser):
    abstract = True
    wait_time = between(0.01, 0.05)  # a busy shop: many customers, short think time
    headers: ClassVar[dict[str, str]] = {}

    @task(5)
    def browse(self) -> None:
        self.client.get("/", headers=self.headers, timeout=TIMEOUT)

    @task(3)
    def product(self) -> None:
        pid = random.randrange(PRODUCTS)
        self.client.get(
            f"/product/{pid}", name="/product/[id]", headers=self.headers, timeout=TIMEOUT
        )

    @task(1)
    def add_to_cart(self) -> None:
        pid = random.randrange(PRODUCTS)
        self.client.post(
            "/cart", json={"product": pid, "qty": 1}, headers=self.headers, timeout=TIMEOUT
        )


class ClosingShopper(Shopper):
    """Every request with ``Connection: close``: a new TCP connection each time."""

    headers: ClassVar[dict[str, str]] = {"Connection": "close"}


class KeepAliveShopper(Shopper):
    """The Session's default keep-alive: one pooled connection per user."""
