/**
 * Phase 2: unpack the app archive into the droplet's app directory under the task's limits.
 * The safe unzip itself is lib/archive/extract.ts; this phase only says what its failures
 * mean for the staging (DESIGN §3.2, §9): a refused or corrupt archive fails the unpack, the
 * stager's own trouble (out of descriptors, an I/O error) is retried.
 */
import { ArchiveError } from '../../../lib/archive/errors.ts';
import { type UnpackInput, type UnpackStats, ZipOpenError, describeFsError, extractZip } from '../../../lib/archive/extract.ts';
import { describeOpenError } from '../../../lib/archive/zip-reader.ts';
import { PhaseError, RetryableError, classify } from '../errors.ts';

export type { UnpackInput, UnpackStats };

const unpackFailed = (reason: string) => new PhaseError('unpack', reason);

export async function unpack(input: UnpackInput): Promise<UnpackStats> {
  try {
    return await extractZip(input);
  } catch (err) {
    if (err instanceof ZipOpenError) {
      // A download's own failure comes through as it is; anything else is the archive's.
      throw classify(err.cause, { phase: 'unpack', describe: (e) => unpackFailed(describeOpenError(e as Error)) });
    }
    throw classify(err, { phase: 'unpack', signal: input.signal, describe: (e) => describeUnpackFailure(e as NodeJS.ErrnoException, input.destDir) });
  }
}

/** Unpack's own words for what went wrong writing the app (every failure here has some). */
function describeUnpackFailure(e: NodeJS.ErrnoException, destDir: string): Error {
  if (e instanceof ArchiveError) return new PhaseError('unpack', e.reason);
  if (e.code === 'EEXIST' || e.code === 'ENOTDIR' || e.code === 'EISDIR') {
    return unpackFailed(`entries conflict (a file and a directory of the same name?): ${describeFsError(e, destDir)}`);
  }
  if (e.code === 'ENOSPC') return unpackFailed('no space left in the staging workspace: the app is too large for this stager');
  // Out of descriptors, an I/O error: the stager's trouble, worth another try; never blame the archive.
  if (e.code === 'EMFILE' || e.code === 'ENFILE' || e.code === 'EIO' || e.code === 'EAGAIN') {
    return new RetryableError(`unpacking: ${describeFsError(e, destDir)}`);
  }
  if (e.code) return unpackFailed(`could not write the app: ${describeFsError(e, destDir)}`);
  return unpackFailed(`corrupt zip archive: ${e.message}`);
}
