"""`mailroom blobs migrate|check`: move the blob store into a bucket, and audit it.

`migrate` copies every blob a row names from the local data dir (or `--from DIR`) to the
store MAILROOM_BLOB_URL names, reads each back to verify its SHA-256, and can be run again
(what is there already is skipped). `check` lists the rows whose blob the configured store
does not hold, by table and id, and exits non-zero when there are any.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from mailroom.core.blobstore import BlobError, LocalBlobStore, get_store
from mailroom.core.blobstore import references as refs


class Command(BaseCommand):
    help = "Copy blobs from the data dir to the S3 bucket (migrate), or find missing ones (check)."

    def add_arguments(self, parser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        migrate = actions.add_parser(
            "migrate", help="Copy every referenced blob from the local directory to the "
                            "bucket in MAILROOM_BLOB_URL, verifying each SHA-256.")
        migrate.add_argument("--from", dest="source", default=None, metavar="DIR",
                             help="The local blob directory (default: the data dir's).")
        actions.add_parser("check", help="List rows whose blob the configured store lacks; "
                                         "exit 1 when any.")

    def handle(self, *args, action: str, **options) -> None:
        try:
            getattr(self, f"_{action}")(**options)
        except BlobError as exc:
            raise CommandError(str(exc)) from None

    def _verify(self, store) -> None:
        verify = getattr(store, "verify", None)
        if verify is not None:
            verify()

    def _migrate(self, *, source: str | None, **options) -> None:
        target = get_store()
        if isinstance(target, LocalBlobStore):
            raise CommandError("MAILROOM_BLOB_URL is not set (s3://bucket/prefix): there is "
                               "no bucket to migrate to.")
        self._verify(target)
        local = LocalBlobStore(source)
        self.stdout.write(f"Copying blobs from {local.describe()} to {target.describe()}.")
        result = refs.migrate(local, target, progress=lambda line: self.stderr.write(line))
        self.stdout.write(
            f"{result.referenced} blobs referenced: {result.copied} copied and verified, "
            f"{result.present} already in the bucket, {len(result.missing)} missing locally, "
            f"{len(result.corrupt)} corrupt locally, {len(result.failed)} failed.")
        if not result.ok:
            raise CommandError("Some blobs were not copied (listed above); run `mailroom "
                               "blobs check` to see which rows name them.")

    def _check(self, **options) -> None:
        store = get_store()
        self._verify(store)
        rows, blobs, missing = refs.check(store)
        for table, pk, sha256 in missing:
            self.stdout.write(f"{table} {pk} {sha256}")
        self.stdout.write(f"Checked {rows} rows naming {blobs} blobs in {store.describe()}: "
                          f"{len(missing)} rows name a missing blob.")
        if missing:
            raise CommandError(f"{len(missing)} rows name a blob that {store.describe()} "
                               "does not hold (listed above).")
