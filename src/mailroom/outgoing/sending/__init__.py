"""The send pipeline (the `send` step of `mailroom worker`), one module per concern:
claim → prepare → plan → lanes (threads, SMTP) → decide (pure) → settle, driven by engine.Sender.
server_choice.py picks the servers, circuit.py and rate_limits.py say whether and how much they
may send now; leases.py renews and reaps the claims, backoff.py times the retries, jobs.py holds
the plain data a pass carries around."""
