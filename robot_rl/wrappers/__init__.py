"""Gymnasium wrappers, one job each (see STYLE.md 6): reward classifiers, image crop/resize, video
recording. The intervention wrapper lives with the human: :mod:`robot_rl.human.intervene`."""
