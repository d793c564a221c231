// The ways DDP may average a gradient bucket (c10d's built-in comm hooks). Plain names, loading no
// addon, so the CLI checks --ddp-comm-hook before libtorch starts.

export type DdpCommHook = 'allreduce' | 'fp16';
export const DDP_COMM_HOOKS: readonly DdpCommHook[] = ['allreduce', 'fp16'];
