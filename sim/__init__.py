"""leie-til-eie: a discrete-event housing-career simulator for Norwegian municipalities."""

__version__ = "0.1.0"
