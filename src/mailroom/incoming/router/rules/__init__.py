"""The router's rules, one module each. Each has `apply(ctx) -> Outcome | None`: an Outcome
decides the message's fate; None lets the next rule look at it. Their order is the runner's
(`router.runner.RULES`)."""
