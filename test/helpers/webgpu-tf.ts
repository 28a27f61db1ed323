// TF.js's webgpu backend in tests (models/webgpu.ts): on SwiftShader in CI (test/helpers/webgpu.ts).
import type { Test } from 'tap'
import { probeAdapter } from '../../models/webgpu.ts'
import { softwareGpuEnv } from './webgpu.ts'

/** True when the `webgpu` package finds an adapter; else skips (fails on CI) with the reason. */
export async function tfWebgpuOrSkip(t: Test): Promise<boolean> {
  softwareGpuEnv()
  try {
    await probeAdapter()
    return true
  } catch (err) {
    const why = `TF.js cannot run on WebGPU here: ${(err as Error).message}`
    if (process.env.CI === 'true') t.fail(why)
    else t.plan(0, why)
    return false
  }
}
