"""Judging one frame on the device: the gate's bands over the input statistics and OOD scores
(:mod:`.gate`), the OOD reference (:mod:`.ood`), and the calibration a model directory carries
(:mod:`.calibration`). Fitting any of these is offline work (:mod:`edge.offline`)."""
