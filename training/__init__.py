"""Training-side tools (dataset build, training, export); not shipped in the extension zip."""
