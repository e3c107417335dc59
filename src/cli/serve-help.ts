import { auditKeyFileHelp } from "./audit-key.js";
import { databaseHelp } from "./serve-database.js";
import { logFormatHelp } from "./serve-log.js";

/**
 * serveHelp is the usage text of `certgate serve`.
 */
export const serveHelp = `Usage: certgate serve [--listen HOST:PORT] [--data-dir DIR | --database URL]
                      [--tls-cert FILE --tls-key FILE] [--client-ca FILE]
                      [--admin THUMBPRINT]... [--reader THUMBPRINT]...
                      [--admin-dir DIR]... [--reader-dir DIR]...
                      [--no-console] [--verify-policy FILE]
                      [--log-format text|json] [LIMITS]

Runs the certificate store service (certgate.v1.CertificateStoreService,
grpc.health.v1.Health and gRPC server reflection for readers and admins)
over HTTP/2 with TLS. Uploaded certificates are kept
as files in the data folder, which API servers can also read directly with
createDirectoryStore(), or with --database in PostgreSQL, shared by every
replica on the same database. Admin client certificates may upload and delete;
reader certificates may list, get, verify and watch.

Without --tls-cert and --tls-key it runs in development mode: on the first
start it creates a CA, a server certificate for localhost, 127.0.0.1 and ::1,
and admin, reader and example client certificates under DIR/dev/ (keys mode
0600), then prints ready-to-paste commands. Never use them in production.

Options:
      --listen HOST:PORT   Where to listen; port 0 picks a free port. The bound
                           address is printed as "listening on URL".
                           By default, localhost:8444.
      --data-dir DIR       The data folder, created when missing.
                           By default, .certgate/store
${databaseHelp}
      --tls-cert FILE      The server's certificate (chain), PEM
      --tls-key FILE       Its private key, PEM
      --client-ca FILE     CA certificate(s), PEM: every client certificate
                           must also chain to one of them, whatever list it
                           is on. By default, the lists alone decide.
      --admin THUMBPRINT   SHA-1 or SHA-256 thumbprint of an admin client
                           certificate (repeatable; see certgate thumbprint)
      --reader THUMBPRINT  Thumbprint of a reader client certificate (repeatable)
      --admin-dir DIR      A folder of admin client certificates, reloaded
                           live (repeatable)
      --reader-dir DIR     A folder of reader client certificates (repeatable)
      --no-console         Do not serve the console, the web page at / for
                           admins and readers (see docs/console.md). By
                           default, it is served.
      --verify-policy FILE A JSON file of policy options (validateTrust,
                           validateRevocation with ocsp or
                           crlDistributionPoints, identities, ...) that
                           VerifyCertificate applies on top of the store (see
                           docs/policy.md). By default, the store and the
                           validity window alone.
${logFormatHelp}
${auditKeyFileHelp}
                           By default, plain SHA-256 digests (see
                           docs/audit.md for what each detects).
  -h, --help               Show this help

LIMITS ("N" a whole number, "S" seconds, fractions allowed):
      --max-watches N      Open WatchCertificates calls in all; more are
                           refused with RESOURCE_EXHAUSTED. By default, 1024.
                           (Health Watch calls are counted on their own.)
      --max-watches-per-connection N
                           The same, per connection. By default, 16.
      --watch-max-entry-changes N
                           A change of more than N certificates at once (a
                           folder replaced, a replica's full copy) reaches
                           watchers as a new snapshot. By default, 1000.
      --idle-timeout S     Close a connection after S seconds without a call
                           (open watches keep theirs); 0 never. By default, 60.
      --handshake-timeout S
                           Close a connection whose TLS handshake has not
                           finished after S seconds. By default, 10.
      --max-refused-calls-per-connection N
                           Close a connection with GOAWAY after N refused
                           calls on it; 0 never. By default, 100.
      --refusal-log-limit N
                           Log at most N refused calls per interval, then one
                           line "M more refusals in the last S s"; 0 logs
                           only that line. By default, 20.
      --refusal-log-interval S
                           The interval of --refusal-log-limit. By default, 10.
      --audit-max-bytes N  Rotate the data folder's audit trail of changes
                           before it grows beyond N bytes (the file before
                           is kept, the one before it dropped).
                           By default, 16777216 (16 MiB).
      --audit-attempts-max-bytes N
                           The same for its trail of refused and failed
                           attempts, kept apart so that refusals never push
                           out changes. By default, 4194304 (4 MiB).

The data folder is locked (DIR/.certgate-serve.lock): a second serve on it
exits with a message naming the holder; the lock of a process that is gone
is taken over.

SIGINT or SIGTERM stops the service gracefully (running calls may finish).
The --tls-cert, --tls-key and --client-ca files are reloaded when they
change (a Kubernetes Secret update too) and on SIGHUP, for new connections;
a set that is half written or whose key does not match is logged and not
loaded, and the one in use is kept.

Examples:
  certgate serve
  certgate serve --listen 0.0.0.0:8444 --data-dir /var/lib/certgate \\
    --tls-cert server.pem --tls-key server-key.pem --client-ca clients-ca.pem \\
    --admin 3AF2...9C --reader-dir /etc/certgate/readers
`;
