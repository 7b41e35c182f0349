"""The ``node`` execution venue: the desktop's orders go to the trader's own order node.

See ``services.node`` for the node's side and docs/operator-guide.md ("Orders from a static
IP") for why: brokers take API orders only from the registered static IP.
"""
