"""dj-stripe's migrations, squashed (settings: MIGRATION_MODULES["djstripe"]).

dj-stripe 2.11 ships three migrations; the second (2.10) removes 514 fields one by one, which Django
takes about 45 seconds of CPU to plan and apply on a fresh database (minutes on a busy machine): the
first `make run`, every CI database. Here 0001_initial creates dj-stripe's tables as 2.11 defines them
(`makemigrations djstripe` against an empty migration module), and 0002/0003 keep their names and do
nothing, so that a database migrated with dj-stripe's own files sees nothing left to apply.

On a dj-stripe upgrade: copy its new migrations here after 0003 (or squash again the same way), and
check `makemigrations --check` stays clean.
"""
