import type { Certificate } from "../src/gen/certgate/v1/certificate_store_pb.js";
import { errorText, store } from "./api.js";
import { confirmDialog } from "./confirm.js";
import { dnText } from "./format.js";
import type { CertificateModel } from "./model.js";
import { toast } from "./toast.js";

/**
 * deleteWithConfirmation asks, naming the certificate, then deletes it;
 * resolves true once it is deleted.
 */
export async function deleteWithConfirmation(model: CertificateModel, c: Certificate): Promise<boolean> {
  const subject = c.subject === "" ? "" : ` (${dnText(c.subject)})`;
  const yes = await confirmDialog(
    `Delete ${c.certificateId}?`,
    `Certificate ${c.certificateId}${subject} will be deleted: API servers following the store stop admitting it.`,
    "Delete",
  );
  if (!yes) return false;
  try {
    await store.deleteCertificate({ certificateId: c.certificateId });
    model.forget(c.certificateId);
    toast(`Deleted ${c.certificateId}.`);
    return true;
  } catch (error) {
    toast(`Could not delete ${c.certificateId}: ${errorText(error)}`, true);
    return false;
  }
}
