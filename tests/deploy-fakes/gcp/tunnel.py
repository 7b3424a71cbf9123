"""The IAP tunnel of the rehearsal (run by the fake gcloud compute start-iap-tunnel, whose
arguments it keeps): forwards 127.0.0.1:<local port> (and [::1], as "localhost" may be either)
to the instance's own address on the port asked for, each connection looked up afresh in the
fake cloud's state ($FAKE_GCP/vms/<instance>/ip and status), as IAP does; a stopped instance
refuses the connection."""

import os
import socket
import sys
import threading

# argv: compute start-iap-tunnel INSTANCE PORT --local-host-port=localhost:P …
INSTANCE, PORT = sys.argv[3], int(sys.argv[4])
LOCAL = next(int(a.rsplit(":", 1)[1]) for a in sys.argv if a.startswith("--local-host-port="))
VM = os.path.join(os.environ["FAKE_GCP"], "vms", INSTANCE)


def pump(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def serve(client):
    try:
        status = open(os.path.join(VM, "status")).read().strip()
        address = open(os.path.join(VM, "ip")).read().strip()
        if status != "RUNNING":
            raise OSError("instance not running")
        upstream = socket.create_connection((address, PORT), timeout=5)
        upstream.settimeout(None)
    except OSError:
        client.close()
        return
    threading.Thread(target=pump, args=(client, upstream), daemon=True).start()
    pump(upstream, client)


def listen(family, host):
    server = socket.socket(family, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((host, LOCAL))
    server.listen(64)
    while True:
        client, _ = server.accept()
        threading.Thread(target=serve, args=(client,), daemon=True).start()


try:
    threading.Thread(target=listen, args=(socket.AF_INET6, "::1"), daemon=True).start()
except OSError:
    pass
print(f"Listening on port [{LOCAL}].", flush=True)
listen(socket.AF_INET, "127.0.0.1")
