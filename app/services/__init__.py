"""Business operations: `fn(*, session, actor, ...)`, the only place rules meet the database."""
