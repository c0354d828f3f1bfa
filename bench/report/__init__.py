"""Reports: load the inputs, analyze them into one ``Report``, write its files.

Loading:   ``load`` (ledgers: evaluations, runs, training metrics), ``baselines`` (bundled
           published scores, external score files); every table's columns in ``columns``.
Analysis:  ``analysis.analyze`` -> ``Report``, from the pure steps in ``scores``,
           ``protocols``, ``compare``, ``study``, ``learning`` and ``provenance``; reads no
           file.
Rendering: ``write.write_report`` writes a Report with ``tables`` (CSV, LaTeX), ``markdown``
           (report.md) and ``figures``.
"""
