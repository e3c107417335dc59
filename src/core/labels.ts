// The one set of rules for certificate labels, for every store and the store
// service: labels travel into logs, CLI output and files, so a label must
// not be able to forge a line, hide text, or smuggle a private key.
import { containsPrivateKeyText } from "./pem-der.js";

/**
 * LabelLimits bounds the labels of one certificate.
 */
export interface LabelLimits {
  /** At most this many labels. By default, 64. */
  readonly maxLabels: number;
  /** At most this many characters per value. By default, 256. */
  readonly maxValueLength: number;
}

/**
 * defaultLabelLimits are the limits of stores and of the store service
 * unless configured otherwise: 64 labels, values of at most 256 characters.
 */
export const defaultLabelLimits: LabelLimits = Object.freeze({ maxLabels: 64, maxValueLength: 256 });

/**
 * LabelProblem is why labels cannot be stored: `private_key` when a value
 * holds private key text (the request must be refused whole), else `invalid`.
 */
export interface LabelProblem {
  readonly kind: "invalid" | "private_key";
  /** A short lowercase message naming the label, never echoing a whole value. */
  readonly message: string;
}

/** The longest label key, in characters. */
export const maxLabelKeyLength = 63;

const labelKey = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$/;
// C0 and C1 controls and DEL (which forge lines in logs and CLI output), the
// line and paragraph separators U+2028/U+2029, and the bidirectional
// controls (U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069), which
// make text display other than it reads (Trojan Source).
const forbiddenCharacters = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/;

/**
 * checkLabels returns why `labels` cannot be stored, or undefined when they
 * can: a plain object (no inherited labels that a copy would drop) of at
 * most `maxLabels` string values; keys of 1 to 63 letters, digits, `.`,
 * `_`, `/` and `-`, starting with a letter or digit (so `__proto__` is
 * refused, never silently dropped); values of at most `maxValueLength`
 * characters without control characters, line or paragraph separators,
 * bidirectional controls, or private key text.
 */
export function checkLabels(labels: unknown, limits: LabelLimits = defaultLabelLimits): LabelProblem | undefined {
  if (labels === null || typeof labels !== "object" || Array.isArray(labels)) {
    return invalid("labels must be an object of strings");
  }
  const prototype: unknown = Object.getPrototypeOf(labels);
  if (prototype !== Object.prototype && prototype !== null) {
    return invalid("labels must be a plain object of strings");
  }
  // Every own key, enumerable or not, as the raw map holds it.
  const keys = Reflect.ownKeys(labels);
  if (keys.length > limits.maxLabels) {
    return invalid(`too many labels: at most ${limits.maxLabels}`);
  }
  for (const key of keys) {
    if (typeof key !== "string" || !labelKey.test(key)) {
      return invalid(
        `invalid label key ${JSON.stringify(String(key).slice(0, 64))}: letters, digits, ".", "_", "/" and "-", at most ${maxLabelKeyLength}, starting with a letter or digit`,
      );
    }
    const value: unknown = Object.getOwnPropertyDescriptor(labels, key)?.value;
    if (typeof value !== "string") {
      return invalid(`label ${key} must be a string`);
    }
    if (containsPrivateKeyText(value)) {
      return { kind: "private_key", message: `label ${key} holds private key text` };
    }
    if (value.length > limits.maxValueLength || forbiddenCharacters.test(value)) {
      return invalid(
        `invalid value of label ${key}: at most ${limits.maxValueLength} characters, no control characters, line separators or bidirectional controls`,
      );
    }
  }
  return undefined;
}

function invalid(message: string): LabelProblem {
  return { kind: "invalid", message };
}
