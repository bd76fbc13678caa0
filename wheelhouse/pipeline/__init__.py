"""``wheelhouse build``: its settings, and the stages a build runs through (inputs -> resolve
-> download -> build wheels -> the wheelhouse directory)."""
