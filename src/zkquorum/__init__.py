"""zkquorum: Apache ZooKeeper 3.8's quorum peer in pure Python.

Layers, with imports pointing down only::

    cli -> api -> runtime -> core -> wire -> config
                          sim -> core

``config``, ``wire``, ``core`` and ``sim`` are pure: no sockets, no clocks, no files.
"""

__version__ = "0.1.0"
