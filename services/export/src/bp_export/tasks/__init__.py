"""Task planning: the tasks a scene affords and where each robot stands to reach them."""
