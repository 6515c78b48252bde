"""Operations: the library API behind each command.

Each operation takes opened stores and keyword-only options, and returns a
result dataclass that the CLI renders as text or JSON. No argv, no printing.
"""
