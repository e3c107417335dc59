import { Code, ConnectError } from "@connectrpc/connect";

/**
 * readStore runs one store call for the service: store errors that are not
 * ConnectErrors (a disk failure) become Internal, with the cause kept for
 * logs but not shown to the client.
 */
export async function readStore<T>(operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (error) {
    if (error instanceof ConnectError) {
      throw error;
    }
    throw new ConnectError("certificate store failed", Code.Internal, undefined, undefined, error);
  }
}
