"""Offline tools, imported only by their commands and never by ``edge run``: fitting the
calibration (``edge calibrate``), evaluation and its report (``edge eval``), the measures they
use (ECE, AUROC, FPR95) and the ``.npz`` data files they read."""
