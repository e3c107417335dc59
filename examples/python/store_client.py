#!/usr/bin/env python3
"""A Python client of certgate's certificate store service, over gRPC.

It uploads a certificate, lists every page, watches until a change and reads
a refused call's decoded error detail (certgate.v1.ClientCertificateError).
The stubs are generated from certgate's proto/ at start into a temporary
folder with grpc_tools (Debian: python3-grpcio python3-grpc-tools; pip:
grpcio grpcio-tools) and never committed.

    python3 examples/python/store_client.py --target localhost:8444 \\
      --ca .certgate/store/dev/ca.pem \\
      --cert .certgate/store/dev/admin.pem --key .certgate/store/dev/admin-key.pem \\
      --upload .certgate/store/dev/client.pem \\
      --refused-cert .certgate/store/dev/client.pem \\
      --refused-key .certgate/store/dev/client-key.pem
"""

import argparse
import importlib
import os
import queue
import sys
import tempfile
import threading

import grpc
from grpc_tools import protoc

PROTO_FILES = [
    "certgate/v1/certificate_store.proto",
    "certgate/v1/errors.proto",
    "google/rpc/status.proto",
]


def generate_stubs(proto_dir, out_dir):
    """Generates the Python stubs of PROTO_FILES from proto_dir into out_dir."""
    # grpc_tools ships the well-known types (google/protobuf/*.proto).
    well_known = os.path.join(os.path.dirname(protoc.__file__), "_proto")
    code = protoc.main(
        ["grpc_tools.protoc", "-I", proto_dir, "-I", well_known,
         "--python_out", out_dir, "--grpc_python_out", out_dir, *PROTO_FILES]
    )
    if code != 0:
        sys.exit(f"store_client: protoc failed on {proto_dir} (exit {code})")
    sys.path.insert(0, out_dir)
    store = importlib.import_module("certgate.v1.certificate_store_pb2")
    store_grpc = importlib.import_module("certgate.v1.certificate_store_pb2_grpc")
    errors = importlib.import_module("certgate.v1.errors_pb2")
    status = importlib.import_module("google.rpc.status_pb2")
    return store, store_grpc, errors, status


def read(path):
    with open(path, "rb") as f:
        return f.read()


def channel(args, cert, key):
    credentials = grpc.ssl_channel_credentials(
        root_certificates=read(args.ca), private_key=read(key), certificate_chain=read(cert)
    )
    options = [("grpc.ssl_target_name_override", args.server_name)] if args.server_name else []
    return grpc.secure_channel(args.target, credentials, options)


def list_all(stub, pb, page_size, timeout):
    """Lists every stored certificate, page by page."""
    certificates, pages, token = [], 0, ""
    while True:
        response = stub.ListCertificates(
            pb.ListCertificatesRequest(page_size=page_size, page_token=token), timeout=timeout
        )
        pages += 1
        certificates.extend(response.certificates)
        token = response.next_page_token
        if not token:
            return certificates, pages


def watch_until_change(stub, pb, make_change, timeout):
    """Reads the watch's snapshot, then calls make_change() and returns the first change."""
    events = queue.Queue()
    call = stub.WatchCertificates(pb.WatchCertificatesRequest(), timeout=timeout)

    def pump():
        try:
            for event in call:
                events.put(event)
        except grpc.RpcError as error:
            events.put(error)

    threading.Thread(target=pump, daemon=True).start()
    try:
        snapshot = 0
        while True:
            event = events.get(timeout=timeout)
            if isinstance(event, grpc.RpcError):
                raise event
            kind = event.WhichOneof("event")
            if kind == "snapshot":
                snapshot += len(event.snapshot.certificates)
                if event.snapshot.last:
                    print(f"watch: snapshot of {snapshot} certificates at revision {event.revision}")
                    make_change()
            elif kind == "change":
                return event
    finally:
        call.cancel()


def refusal_detail(error, errors_pb, status_pb):
    """Decodes the ClientCertificateError in a refused call's grpc-status-details-bin trailer."""
    trailers = dict(error.trailing_metadata() or ())
    raw = trailers.get("grpc-status-details-bin")
    if raw is None:
        return None
    status = status_pb.Status.FromString(raw)
    for detail in status.details:
        if detail.Is(errors_pb.ClientCertificateError.DESCRIPTOR):
            info = errors_pb.ClientCertificateError()
            detail.Unpack(info)
            return info
    return None


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", default="localhost:8444", help="HOST:PORT of certgate serve")
    parser.add_argument("--server-name", help="the name in the server's certificate, if not the target's host")
    parser.add_argument("--ca", required=True, help="the CA of the server's certificate, PEM")
    parser.add_argument("--cert", required=True, help="an admin client certificate, PEM")
    parser.add_argument("--key", required=True, help="its private key, PEM")
    parser.add_argument("--upload", required=True, help="the certificate to upload, PEM or DER")
    parser.add_argument("--refused-cert", required=True, help="a client certificate the service refuses")
    parser.add_argument("--refused-key", required=True, help="its private key")
    parser.add_argument("--page-size", type=int, default=2)
    parser.add_argument("--proto", default=os.path.join(here, "..", "..", "proto"), help="certgate's proto/ folder")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds each call may take")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="certgate-python-") as out:
        pb, pb_grpc, errors_pb, status_pb = generate_stubs(args.proto, out)

        with channel(args, args.cert, args.key) as admin:
            stub = pb_grpc.CertificateStoreServiceStub(admin)
            created = stub.CreateCertificate(
                pb.CreateCertificateRequest(certificate=read(args.upload), labels={"from": "python"}),
                timeout=args.timeout,
            ).certificate
            print(f"uploaded {created.certificate_id} sha256 {created.sha256_thumbprint} subject {created.subject}")

            certificates, pages = list_all(stub, pb, args.page_size, args.timeout)
            print(f"listed {len(certificates)} certificates in {pages} pages")

            def delete():
                stub.DeleteCertificate(
                    pb.DeleteCertificateRequest(certificate_id=created.certificate_id), timeout=args.timeout
                )

            event = watch_until_change(stub, pb, delete, args.timeout)
            print(f"watch: change at revision {event.revision}: deleted {', '.join(event.change.deleted_certificate_ids)}")

        with channel(args, args.refused_cert, args.refused_key) as refused:
            stub = pb_grpc.CertificateStoreServiceStub(refused)
            try:
                stub.ListCertificates(pb.ListCertificatesRequest(), timeout=args.timeout)
                sys.exit("store_client: a refused certificate was admitted")
            except grpc.RpcError as error:
                info = refusal_detail(error, errors_pb, status_pb)
                if info is None:
                    sys.exit(f"store_client: refused with {error.code().name} and no certgate detail: {error.details()}")
                print(f"refused: {error.code().name} reason {info.reason} procedure {info.procedure}")


if __name__ == "__main__":
    main()
