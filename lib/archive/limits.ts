/** What an archive may unpack to (DESIGN §9: the unpack limits and their defaults). */
export interface UnpackLimits {
  /** Sum of the entries' uncompressed sizes. */
  maxTotalBytes: number;
  maxEntries: number;
  /** Uncompressed/compressed, checked for entries above `ratioMinBytes`. */
  maxRatio: number;
  ratioMinBytes: number;
  maxPathBytes: number;
  maxNameBytes: number;
}
