"""What only the book's chapters use: their analyses, figure builders, claims and precomputed tables.

Each module says which chapter it serves. The library (everything outside ``prunebook.book``)
never imports from here, so the model, the engines and the experiments stand on their own.

- :mod:`.claims`: ``glue`` (numbers into the prose) and ``claim`` (an assert behind a stated finding);
- :mod:`.plots`, :mod:`.phase`, :mod:`.phase_figures`: the figure style, seed dots, success curves,
  phase-diagram cells and maps (chapters 1 to 6);
- :mod:`.stages`: chapter 3's stage-1 analyses (growth rates, the race prediction);
- :mod:`.boundary`, :mod:`.margins`: chapter 4's analyses (race boundaries, the margin split);
- :mod:`.tables`, :mod:`.precomputed`: precomputed sweep tables and the book's declarations (``make tables``).
"""
