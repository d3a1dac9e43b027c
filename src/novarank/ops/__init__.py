"""Operations as code: alert rules and their tests, routing, runbooks, on-call, generated
from one spec and checked by the real tools (promtool, amtool)."""
