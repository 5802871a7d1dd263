"""The LeRobot writer: its input, metadata, statistics, video, ground-truth pack and card."""
