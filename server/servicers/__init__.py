"""Thin gRPC servicers: resolve the caller, decode, call a domain function, encode."""
