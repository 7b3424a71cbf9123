#!/usr/bin/env python3
"""A small fake of the Google Cloud Storage XML API, for tests.

Serves exactly the requests object_store 0.13's GCS client makes
(`object_store/src/gcp/client.rs`): object PUT (with the
`x-goog-if-generation-match` precondition), GET/HEAD with `Range`, DELETE,
copy (PUT with `x-goog-copy-source`), list (`GET /<bucket>?list-type=2` with
prefix, delimiter, continuation tokens) and the XML multipart upload
(`?uploads`, `?partNumber&uploadId`, `POST ?uploadId`, `DELETE ?uploadId`).
Errors are GCS-style XML bodies with the real status codes (404 NoSuchKey /
NoSuchBucket, 412 PreconditionFailed, 401, 416).

Objects live in memory; with --mirror DIR every object is also written to
DIR/<bucket>/<key>, so that a test can read the bucket with other tools.

Test hooks, under /_fake/ (not part of GCS):
  GET    /_fake/requests   every request seen: method, bucket, key, query, Authorization,
                            Range, x-goog-copy-source, status
  GET    /_fake/objects    {"<bucket>/<key>": size}
  PUT    /_fake/fault?method=DELETE&prefix=<key prefix>&status=403
                            answer matching requests with that status until cleared
  DELETE /_fake/fault      clear the fault
  DELETE /_fake/requests   forget the requests seen so far

Python 3 standard library only. Prints "port N" once it listens on 127.0.0.1.
"""

import argparse
import email.utils
import hashlib
import json
import os
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit
from xml.etree import ElementTree
from xml.sax.saxutils import escape


class Obj:
    def __init__(self, data: bytes, generation: int):
        self.data = data
        self.generation = generation
        self.etag = '"%s"' % hashlib.md5(data).hexdigest()
        self.modified = time.time()


class Store:
    """Buckets of objects, multipart uploads in progress, the request log."""

    def __init__(self, buckets, mirror, token, page_size):
        self.lock = threading.Lock()
        self.buckets = {b: {} for b in buckets}
        self.uploads = {}  # upload id -> (bucket, key, {part number: bytes})
        self.mirror = mirror
        self.token = token
        self.page_size = page_size
        self.generation = int(time.time() * 1e6)
        self.requests = []
        self.fault = None

    def next_generation(self):
        self.generation += 1
        return self.generation

    def put(self, bucket, key, data):
        obj = Obj(data, self.next_generation())
        self.buckets[bucket][key] = obj
        self.write_mirror(bucket, key, data)
        return obj

    def delete(self, bucket, key):
        del self.buckets[bucket][key]
        if self.mirror:
            path = os.path.join(self.mirror, bucket, key)
            os.remove(path)
            # Folders exist on disk only: prune the empty ones, as GCS has none.
            parent = os.path.dirname(path)
            root = os.path.join(self.mirror, bucket)
            while parent != root and not os.listdir(parent):
                os.rmdir(parent)
                parent = os.path.dirname(parent)

    def write_mirror(self, bucket, key, data):
        if not self.mirror:
            return
        path = os.path.join(self.mirror, bucket, key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = os.path.join(self.mirror, ".tmp-" + uuid.uuid4().hex)
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)


def xml_error(code, message, **extra):
    details = "".join("<%s>%s</%s>" % (k, escape(str(v)), k) for k, v in extra.items())
    return (
        "<?xml version='1.0' encoding='UTF-8'?><Error><Code>%s</Code><Message>%s</Message>%s</Error>"
        % (code, escape(message), details)
    ).encode()


def http_date(ts):
    return email.utils.formatdate(ts, usegmt=True)


def iso_date(ts):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + ".%03dZ" % int((ts % 1) * 1000)


def parse_range(header, size):
    """(start, end exclusive) of a `bytes=` range, or None when unsatisfiable."""
    spec = header.strip()
    if not spec.startswith("bytes=") or "," in spec:
        return None
    first, _, last = spec[len("bytes="):].partition("-")
    if first == "":
        n = int(last)
        return (max(size - n, 0), size) if n > 0 and size > 0 else None
    start = int(first)
    end = size if last == "" else min(int(last) + 1, size)
    return (start, end) if start < size and start < end else None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "gcs-fake"

    def log_message(self, *args):
        pass

    # ---- plumbing -------------------------------------------------------

    @property
    def store(self) -> Store:
        return self.server.store

    def body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def reply(self, status, body=b"", headers=None, head=False):
        self.status = status
        self.send_response(status)
        headers = dict(headers or {})
        headers.setdefault("Content-Length", str(len(body)))
        if body and "Content-Type" not in headers:
            headers["Content-Type"] = "application/xml; charset=UTF-8"
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if body and not head:
            self.wfile.write(body)

    def error(self, status, code, message, head=False, **extra):
        self.reply(status, b"" if head else xml_error(code, message, **extra), head=head)

    def handle_any(self):
        self.status = None
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        # The client sends the bucket and the key percent-encoded ('/' as %2F).
        bucket, _, key = url.path.lstrip("/").partition("/")
        bucket, key = unquote(bucket), unquote(key)
        try:
            if bucket == "_fake":
                self.control(key, query)
                return
            entry = {
                "method": self.command,
                "bucket": bucket,
                "key": key,
                "query": url.query,
                "authorization": self.headers.get("Authorization"),
                "range": self.headers.get("Range"),
                "copy_source": self.headers.get("x-goog-copy-source"),
                "if_generation_match": self.headers.get("x-goog-if-generation-match"),
            }
            try:
                self.dispatch(bucket, key, query)
            finally:
                entry["status"] = self.status
                with self.store.lock:
                    self.store.requests.append(entry)
        except (ConnectionError, BrokenPipeError):
            self.close_connection = True

    def dispatch(self, bucket, key, query):
        head = self.command == "HEAD"
        if self.command in ("PUT", "POST"):
            data = self.body()
        else:
            data = b""
        token = self.store.token
        sent = (self.headers.get("Authorization") or "").strip()
        # --token "": no credentials expected (object_store's disable_oauth
        # sends no Authorization header, or an empty bearer).
        expected = ("", "Bearer") if token == "" else ("Bearer " + str(token),)
        if token is not None and sent not in expected:
            self.error(401, "AuthenticationRequired", "Invalid Credentials", head=head)
            return
        fault = self.store.fault
        if fault and fault["method"] == self.command and key.startswith(fault["prefix"]):
            self.error(fault["status"], "InjectedFault", "fault injected by the test", head=head)
            return
        if bucket not in self.store.buckets:
            self.error(404, "NoSuchBucket", "The specified bucket does not exist.", head=head)
            return
        if key == "":
            if self.command == "GET" and query.get("list-type") == "2":
                self.list_objects(bucket, query)
            else:
                self.error(400, "InvalidArgument", "unsupported bucket request %s" % self.command)
            return
        if self.command in ("GET", "HEAD"):
            self.get_object(bucket, key, head)
        elif self.command == "PUT" and "uploadId" in query:
            self.put_part(query, data)
        elif self.command == "PUT" and self.headers.get("x-goog-copy-source"):
            self.copy_object(bucket, key)
        elif self.command == "PUT":
            self.put_object(bucket, key, data)
        elif self.command == "POST" and "uploads" in query:
            self.initiate_upload(bucket, key)
        elif self.command == "POST" and "uploadId" in query:
            self.complete_upload(bucket, key, query["uploadId"], data)
        elif self.command == "DELETE" and "uploadId" in query:
            with self.store.lock:
                self.store.uploads.pop(query["uploadId"], None)
            self.reply(204)
        elif self.command == "DELETE":
            self.delete_object(bucket, key)
        else:
            self.error(400, "InvalidArgument", "unsupported request %s" % self.command)

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = handle_any

    # ---- test hooks -----------------------------------------------------

    def control(self, what, query):
        if what == "requests" and self.command == "DELETE":
            with self.store.lock:
                self.store.requests.clear()
            body = b"{}"
        elif what == "requests":
            with self.store.lock:
                body = json.dumps(self.store.requests).encode()
        elif what == "objects":
            with self.store.lock:
                body = json.dumps(
                    {"%s/%s" % (b, k): len(o.data) for b, objs in self.store.buckets.items() for k, o in objs.items()}
                ).encode()
        elif what == "fault" and self.command == "PUT":
            self.body()
            self.store.fault = {
                "method": query["method"],
                "prefix": query.get("prefix", ""),
                "status": int(query.get("status", "403")),
            }
            body = b"{}"
        elif what == "fault" and self.command == "DELETE":
            self.store.fault = None
            body = b"{}"
        else:
            self.reply(404, b"unknown test hook")
            return
        self.reply(200, body, {"Content-Type": "application/json"})

    # ---- objects --------------------------------------------------------

    def precondition_fails(self, existing):
        wanted = self.headers.get("x-goog-if-generation-match")
        if wanted is None:
            return False
        current = existing.generation if existing else 0
        return int(wanted) != current

    def object_headers(self, obj):
        return {
            "ETag": obj.etag,
            "Last-Modified": http_date(obj.modified),
            "x-goog-generation": str(obj.generation),
            "x-goog-stored-content-length": str(len(obj.data)),
            "Content-Type": "application/octet-stream",
        }

    def get_object(self, bucket, key, head):
        with self.store.lock:
            obj = self.store.buckets[bucket].get(key)
        if obj is None:
            self.error(404, "NoSuchKey", "The specified key does not exist.", head=head)
            return
        if_match = self.headers.get("If-Match")
        if if_match is not None and if_match != obj.etag:
            self.error(412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold.", head=head)
            return
        if_none_match = self.headers.get("If-None-Match")
        if if_none_match is not None and if_none_match == obj.etag:
            self.reply(304, headers=self.object_headers(obj))
            return
        headers = self.object_headers(obj)
        range_header = self.headers.get("Range")
        if range_header:
            span = parse_range(range_header, len(obj.data))
            if span is None:
                self.error(416, "InvalidRange", "The requested range cannot be satisfied.", head=head)
                return
            start, end = span
            headers["Content-Range"] = "bytes %d-%d/%d" % (start, end - 1, len(obj.data))
            self.reply(206, obj.data[start:end], headers, head)
        else:
            self.reply(200, obj.data, headers, head)

    def put_object(self, bucket, key, data):
        with self.store.lock:
            if self.precondition_fails(self.store.buckets[bucket].get(key)):
                obj = None
            else:
                obj = self.store.put(bucket, key, data)
        if obj is None:
            self.error(412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold.")
        else:
            self.reply(200, headers={"ETag": obj.etag, "x-goog-generation": str(obj.generation)})

    def copy_object(self, bucket, key):
        source = unquote(self.headers["x-goog-copy-source"]).lstrip("/")
        src_bucket, _, src_key = source.partition("/")
        with self.store.lock:
            src = self.store.buckets.get(src_bucket, {}).get(src_key)
            if src is None:
                status = 404
            elif self.precondition_fails(self.store.buckets[bucket].get(key)):
                status = 412
            else:
                obj = self.store.put(bucket, key, src.data)
                status = 200
        if status == 404:
            self.error(404, "NoSuchKey", "The specified key does not exist.", Key=src_key)
        elif status == 412:
            self.error(412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold.")
        else:
            body = (
                "<?xml version='1.0' encoding='UTF-8'?><CopyObjectResult><LastModified>%s</LastModified>"
                "<ETag>%s</ETag></CopyObjectResult>" % (iso_date(obj.modified), escape(obj.etag))
            ).encode()
            self.reply(200, body, {"x-goog-generation": str(obj.generation)})

    def delete_object(self, bucket, key):
        with self.store.lock:
            found = key in self.store.buckets[bucket]
            if found:
                self.store.delete(bucket, key)
        if found:
            self.reply(204)
        else:
            self.error(404, "NoSuchKey", "The specified key does not exist.")

    def list_objects(self, bucket, query):
        prefix = query.get("prefix", "")
        delimiter = query.get("delimiter", "")
        after = query.get("continuation-token") or query.get("start-after") or ""
        max_keys = min(int(query.get("max-keys") or self.store.page_size), self.store.page_size)
        with self.store.lock:
            objects = sorted((k, o) for k, o in self.store.buckets[bucket].items() if k.startswith(prefix))
        # Entries (objects and common prefixes) in key order, after the token.
        entries, seen = [], set()
        for k, o in objects:
            rest = k[len(prefix):]
            if delimiter and delimiter in rest:
                common = prefix + rest.split(delimiter)[0] + delimiter
                if common not in seen:
                    seen.add(common)
                    entries.append((common, None))
            else:
                entries.append((k, o))
        entries = [e for e in entries if e[0] > after]
        page, more = entries[:max_keys], len(entries) > max_keys
        parts = ["<?xml version='1.0' encoding='UTF-8'?><ListBucketResult>"]
        parts.append("<Name>%s</Name><Prefix>%s</Prefix><KeyCount>%d</KeyCount><MaxKeys>%d</MaxKeys>"
                     % (escape(bucket), escape(prefix), len(page), max_keys))
        parts.append("<IsTruncated>%s</IsTruncated>" % ("true" if more else "false"))
        if more:
            parts.append("<NextContinuationToken>%s</NextContinuationToken>" % escape(page[-1][0]))
        for k, o in page:
            if o is None:
                parts.append("<CommonPrefixes><Prefix>%s</Prefix></CommonPrefixes>" % escape(k))
            else:
                parts.append(
                    "<Contents><Key>%s</Key><Generation>%d</Generation><LastModified>%s</LastModified>"
                    "<ETag>%s</ETag><Size>%d</Size></Contents>"
                    % (escape(k), o.generation, iso_date(o.modified), escape(o.etag), len(o.data))
                )
        parts.append("</ListBucketResult>")
        self.reply(200, "".join(parts).encode())

    # ---- multipart uploads ----------------------------------------------

    def initiate_upload(self, bucket, key):
        upload_id = uuid.uuid4().hex
        with self.store.lock:
            self.store.uploads[upload_id] = (bucket, key, {})
        body = (
            "<?xml version='1.0' encoding='UTF-8'?><InitiateMultipartUploadResult><Bucket>%s</Bucket>"
            "<Key>%s</Key><UploadId>%s</UploadId></InitiateMultipartUploadResult>" % (escape(bucket), escape(key), upload_id)
        ).encode()
        self.reply(200, body)

    def put_part(self, query, data):
        with self.store.lock:
            upload = self.store.uploads.get(query["uploadId"])
            if upload is not None:
                upload[2][int(query["partNumber"])] = data
        if upload is None:
            self.error(404, "NoSuchUpload", "The requested upload was not found.")
        else:
            self.reply(200, headers={"ETag": '"%s"' % hashlib.md5(data).hexdigest()})

    def complete_upload(self, bucket, key, upload_id, data):
        listed = [
            (int(p.findtext("PartNumber")), p.findtext("ETag"))
            for p in ElementTree.fromstring(data).iter("Part")
        ]
        with self.store.lock:
            upload = self.store.uploads.pop(upload_id, None)
            ok = upload is not None and all(
                n in upload[2] and '"%s"' % hashlib.md5(upload[2][n]).hexdigest() == etag for n, etag in listed
            )
            if ok:
                obj = self.store.put(bucket, key, b"".join(upload[2][n] for n, _ in listed))
        if upload is None:
            self.error(404, "NoSuchUpload", "The requested upload was not found.")
        elif not ok:
            self.error(400, "InvalidPart", "One or more of the specified parts could not be found.")
        else:
            body = (
                "<?xml version='1.0' encoding='UTF-8'?><CompleteMultipartUploadResult><Bucket>%s</Bucket>"
                "<Key>%s</Key><ETag>%s</ETag></CompleteMultipartUploadResult>"
                % (escape(bucket), escape(key), escape(obj.etag))
            ).encode()
            self.reply(200, body, {"x-goog-generation": str(obj.generation)})


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bucket", action="append", required=True, help="a bucket that exists (repeatable)")
    parser.add_argument("--mirror", help="also write every object to MIRROR/<bucket>/<key>")
    parser.add_argument("--token", help="accept only 'Authorization: Bearer TOKEN' (401 otherwise); '' accepts no credentials only")
    parser.add_argument("--page-size", type=int, default=1000, help="most keys per list page (GCS: 1000)")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.store = Store(args.bucket, args.mirror, args.token, args.page_size)
    print("port %d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
