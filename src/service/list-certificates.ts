import { Code, ConnectError } from "@connectrpc/connect";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { StoredCertificate, WritableCertificateStore } from "../core/store.js";
import type {
  ListCertificatesRequest,
  ListCertificatesResponseSchema,
} from "../gen/certgate/v1/certificate_store_pb.js";
import { certificateMessage } from "./convert.js";
import type { ExpiryFilter } from "./expiring.js";
import { timestampMillis } from "./expiring.js";
import { decodePageToken, encodePageToken } from "./page-token.js";
import { readStore } from "./read-store.js";

const defaultPageSize = 100;
const maxPageSize = 1000;

/**
 * ListCertificatesOptions configures `createListHandler`.
 */
export interface ListCertificatesOptions {
  /** The store whose certificates are listed. */
  readonly store: WritableCertificateStore;
  /** Pages filtered by expiry or labels. */
  readonly expiring: ExpiryFilter;
}

/**
 * createListHandler answers ListCertificates page by page (100 certificates
 * by default, at most 1000), in id order; a filter by expiry or labels is
 * read through `expiring`.
 */
export function createListHandler(
  options: ListCertificatesOptions,
): (req: ListCertificatesRequest) => Promise<MessageInitShape<typeof ListCertificatesResponseSchema>> {
  const { store, expiring } = options;
  return async function listCertificates(req) {
    if (req.pageSize < 0) {
      throw new ConnectError("page_size must not be negative", Code.InvalidArgument);
    }
    const size = req.pageSize === 0 ? defaultPageSize : Math.min(req.pageSize, maxPageSize);
    const after = req.pageToken === "" ? undefined : decodePageToken(req.pageToken);
    const labels = Object.keys(req.labels).length === 0 ? undefined : { ...req.labels };
    if (req.expiresBefore !== undefined || labels !== undefined) {
      const before = req.expiresBefore === undefined ? undefined : timestampMillis("expires_before", req.expiresBefore);
      const page = await readStore(() => expiring.page({ after, size, before, labels }));
      return {
        certificates: page.certificates.map((stored) => certificateMessage(stored)),
        nextPageToken: page.nextAfter === undefined ? "" : encodePageToken(page.nextAfter),
      };
    }
    const page = await readStore(() => store.list({ after, limit: size + 1 }));
    const more = page.length > size;
    const shown = more ? page.slice(0, size) : page;
    return {
      certificates: shown.map((stored) => certificateMessage(stored)),
      nextPageToken: more ? encodePageToken((shown[shown.length - 1] as StoredCertificate).id) : "",
    };
  };
}
