/** An archive refused for what it holds (or that could not be unpacked): the reason says why, in words the uploader can act on. */
export class ArchiveError extends Error {
  override name = 'ArchiveError';
  readonly reason: string;
  constructor(reason: string) {
    super(reason);
    this.reason = reason;
  }
}

export const fail = (reason: string) => new ArchiveError(reason);
