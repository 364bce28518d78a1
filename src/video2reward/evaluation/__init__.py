"""Reading scores: metrics (VOC, AUROC, dense agreement), the camera-shift columns, linear probes, plots and the HTML report."""
