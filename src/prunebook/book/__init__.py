"""What only the book's chapters use: their analyses, figure builders, claims and precomputed tables.

Each module says which chapter it serves. The library (everything outside ``prunebook.book``)
never imports from here, so the model, the engines and the experiments stand on their own.

- :mod:`.claims`: ``glue`` (numbers into the prose), ``glue_record`` (every field of a record at once)
  and ``claim`` (an assert behind a stated finding);
- :mod:`.plots`, :mod:`.phase`, :mod:`.phase_figures`: the figure style, seed dots, success curves,
  phase-diagram cells and maps (chapters 1 to 6);
- :mod:`.fitting`: chapters 1 and 2, which training samples a network can fit (stuck samples);
- :mod:`.usable`: chapter 2, the mask survey and the usable-neuron law at its units and on the flow;
- :mod:`.stages`, :mod:`.step_size`, :mod:`.overshoot`, :mod:`.memorization`, :mod:`.dynamics_figures`:
  chapter 3's analyses (stage 1 and the race ratio, GD against the flow, the first-step overshoot
  criterion, memorization at the signal's time and the split of the test loss) and its figures;
- :mod:`.boundary`, :mod:`.race`, :mod:`.finding2`, :mod:`.finding3`: chapter 4's analyses (race
  boundaries and scaling, the race ratio on sweep tables and rule scores, finding 2 paired by seed,
  finding 3 by kinds of networks);
- :mod:`.story`, :mod:`.explore`: the introduction's figures and the interactive phase diagram;
- :mod:`.criteria_study`: chapter 5's analyses (what criteria keep, GraSP's initial gradient, paired tests);
- :mod:`.digits_study`: chapter 6's analyses (the digits runs, the choice of p, baselines, neuron SNR);
- :mod:`.tables`, :mod:`.precomputed`: precomputed sweep tables and the book's declarations (``make tables``).
"""
