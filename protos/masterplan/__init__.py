"""The masterplan API: generated protobuf and gRPC stubs (see ``protos/``)."""
