"""Gymnasium wrappers, one job each (see STYLE.md 6): interventions, reward classifiers, image
crop/resize, video recording."""
