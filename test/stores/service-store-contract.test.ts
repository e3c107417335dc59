// The WritableCertificateStore contract that the certificate store service
// relies on, checked on the memory store (its reference implementation).
import { describe } from "vitest";
import { createMemoryStore } from "../../src/stores/memory-store.js";
import { storeContract } from "../support/store-contract.js";

describe("createMemoryStore()", () => {
  storeContract(async (initial = []) => createMemoryStore({ certificates: initial }));
});
