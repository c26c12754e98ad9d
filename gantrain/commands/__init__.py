"""The console commands, each a short module over the library: ``gantrain`` (:mod:`.train`),
``gantrain-eval`` (:mod:`.evaluate`), ``gantrain-generate`` (:mod:`.generate`), ``gantrain-export``
(:mod:`.export`), with what they share:
``--help`` (:mod:`.help`), a quiet console (:mod:`.console`), ``key=value`` parsing (:mod:`.keys`),
the callables a config may name (:mod:`.targets`) and a sweep's ``summary.csv`` (:mod:`.sweep_summary`)."""
