"""Objective evaluation: metrics, the evaluation run and its report, the training callback."""
