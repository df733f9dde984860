"""Structure-aware fuzzing of deepfrack's command line: every input kind is mutated (as parsed data and as
text), each case runs in a forked child with a time limit, and the outcome is classified (accepted with
valid outputs, a clean one-line error, or a defect: crash, hang, partial output, bad message).

``tests/test_fuzz.py`` runs a few hundred cases per kind; ``benchmarks/fuzz.py`` runs more and prints
the table by kind."""
