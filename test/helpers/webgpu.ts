// WebGPU in tests without a GPU: Chromium's SwiftShader (Debian's chromium package) is a Vulkan driver
// that Dawn (onnxruntime-node's WebGPU EP, the `webgpu` package) accepts; Debian's own lavapipe it refuses.
// Dawn also wants XDG_RUNTIME_DIR. Both are set here, before anything starts Dawn, unless already set
// (a machine with a GPU keeps its own driver list).
import { existsSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { Test } from 'tap'
import { checkWebGpu } from '../../src/infer/device.ts'

export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json'

/** The environment a WebGPU test runs under: VK_ICD_FILENAMES and XDG_RUNTIME_DIR. */
export function softwareGpuEnv(): Record<string, string> {
  if (!process.env.VK_ICD_FILENAMES && existsSync(SWIFTSHADER_ICD)) process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD
  if (!process.env.XDG_RUNTIME_DIR) process.env.XDG_RUNTIME_DIR = mkdtempSync(path.join(tmpdir(), 'lmp-xdg-'))
  return { VK_ICD_FILENAMES: process.env.VK_ICD_FILENAMES ?? '', XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR }
}

/**
 * Resolves true when onnxruntime-node's WebGPU EP finds an adapter. Otherwise the test is skipped with the
 * reason, except on CI (CI=true), where .ci/run installs what WebGPU needs, so it fails instead.
 */
export async function webgpuOrSkip(t: Test): Promise<boolean> {
  softwareGpuEnv()
  try {
    await checkWebGpu()
    return true
  } catch (err) {
    const why = `no WebGPU adapter: ${(err as Error).message}`
    if (process.env.CI === 'true') t.fail(why)
    else t.plan(0, why)
    return false
  }
}
