"""Frozen image encoders: pre-trained here on recorded frames, their features cached per stored frame.

:mod:`~robot_rl.encoders.keypoints` (the encoder and its file), :mod:`~robot_rl.encoders.pretrain`
(``robot-rl pretrain-encoder``), :mod:`~robot_rl.encoders.cached` (the agent's heads on cached
features and the replay factory).
"""
