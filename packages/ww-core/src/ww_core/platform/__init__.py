"""The adapter platform: the layer-matrix protocol, hook specifications, adapter options, tensor references and the file gate."""
