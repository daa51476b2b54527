"""glacier-movement: Landsat-8 glacier movement prediction, reproduced end to end.

Data flows one way through the modules named after the pipeline stages:
``synthetic`` / ``acquisition`` → ``preprocessing`` → ``sequences`` → ``models`` / ``training``
→ ``evaluation`` / ``flow`` → ``plotting`` / ``report``.
"""

__version__ = "0.1.0"
