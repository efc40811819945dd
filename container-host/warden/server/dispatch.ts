import type { DecodedRequest } from '../protocol/codec.ts';
import type * as wire from '../protocol/types.ts';
import type { RequestName, ResponseOf } from '../protocol/types.ts';
import { handleToService, handleToWire } from './handles.ts';
import type { DiskLimits, WardenService } from './service.ts';
import { camelKeys, infoResponse, jobResponse, netOutSpec, snakeKeys, spawnSpec, streamResponse } from './translate.ts';

/** One request → one service call → one wire response. Stream, which answers many times, is apart. */
export async function dispatch(
  service: WardenService,
  decoded: Exclude<DecodedRequest, { name: 'Stream' }>,
  /** Aborted when the connection closes: Link and Run stop waiting (the job goes on). */
  signal?: AbortSignal,
): Promise<ResponseOf<RequestName>> {
  switch (decoded.name) {
    case 'Create': {
      const r = decoded.request;
      const { handle } = await service.create({
        handle: r.handle && handleToService(r.handle),
        graceTimeS: r.grace_time,
        bindMounts: (r.bind_mounts ?? []).map((b) => ({
          srcPath: b.src_path,
          dstPath: b.dst_path,
          mode: b.mode === 1 ? 'rw' : 'ro',
        })),
        network: r.network,
        rootfs: r.rootfs,
      });
      return { handle: handleToWire(handle) };
    }
    case 'Stop': {
      const r = decoded.request;
      await service.stop(handleToService(r.handle), { background: r.background ?? false, kill: r.kill ?? false });
      return {};
    }
    case 'Destroy':
      await service.destroy(handleToService(decoded.request.handle));
      return {};
    case 'Info':
      return infoResponse(await service.info(handleToService(decoded.request.handle)));
    case 'Spawn': {
      const { jobId } = await service.spawn(spawnSpec(decoded.request));
      return { job_id: jobId };
    }
    case 'Link':
      return jobResponse(await service.link(handleToService(decoded.request.handle), decoded.request.job_id, signal));
    case 'Run':
      return jobResponse(await service.run(spawnSpec(decoded.request), signal));
    case 'NetIn': {
      const r = decoded.request;
      const res = await service.netIn({
        handle: handleToService(r.handle),
        containerPort: r.container_port,
        hostPort: r.host_port,
      });
      return { host_port: res.hostPort, container_port: res.containerPort };
    }
    case 'NetOut':
      await service.netOut(netOutSpec(decoded.request));
      return {};
    case 'CopyIn': {
      const r = decoded.request;
      await service.copyIn(handleToService(r.handle), r.src_path, r.dst_path);
      return {};
    }
    case 'CopyOut': {
      const r = decoded.request;
      await service.copyOut(handleToService(r.handle), r.src_path, r.dst_path, r.owner);
      return {};
    }
    case 'LimitMemory': {
      const r = decoded.request;
      const res = await service.limitMemory(handleToService(r.handle), r.limit_in_bytes);
      return { limit_in_bytes: res.limitInBytes };
    }
    case 'LimitDisk': {
      const { handle, ...limits } = decoded.request;
      const res = await service.limitDisk(handleToService(handle), camelKeys<DiskLimits>(limits));
      return snakeKeys<wire.LimitDiskResponse>(res);
    }
    case 'LimitBandwidth': {
      const r = decoded.request;
      const res = await service.limitBandwidth(handleToService(r.handle), r.rate, r.burst);
      return { rate: res.rate, burst: res.burst };
    }
    case 'LimitCpu': {
      const r = decoded.request;
      const res = await service.limitCpu(handleToService(r.handle), r.limit_in_shares);
      return { limit_in_shares: res.limitInShares };
    }
    case 'Ping':
      return {};
    case 'List':
      return { handles: (await service.list()).map(handleToWire) };
    case 'Echo':
      return { message: decoded.request.message };
  }
}

/** Stream's answers: output chunks as produced, then the one carrying exit_status. */
export async function* dispatchStream(service: WardenService, request: wire.StreamRequest, signal: AbortSignal): AsyncGenerator<wire.StreamResponse> {
  for await (const chunk of service.stream(handleToService(request.handle), request.job_id, signal)) {
    yield streamResponse(chunk);
    if ('exitStatus' in chunk) return;
  }
}
