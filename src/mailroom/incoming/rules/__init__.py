"""The router's rules, in order. Each module has `apply(ctx) -> Outcome | None`: an Outcome
decides the message's fate; None lets the next rule look at it."""

from mailroom.incoming.rules import (
    alias,
    bounce,
    duplicate,
    fallback,
    loop,
    post,
    security,
    thread,
)

RULES = [
    ("duplicate", duplicate.apply),
    ("bounce", bounce.apply),
    ("loop", loop.apply),
    ("thread", thread.apply),
    ("alias", alias.apply),
    ("fallback", fallback.apply),
    ("security", security.apply),
    ("post", post.apply),
]
