"""Generated protobuf and gRPC modules for ``modelrouter.v1``.

``router_pb2*.py`` are generated from ``protos/modelrouter/v1/router.proto`` when the
package is built or installed (see ``setup.py``); they are not committed.
"""
