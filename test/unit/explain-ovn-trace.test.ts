// The OVN half of explain, pure parts: the ovn-trace microflow for a packet leaving the pod, and the parsing of
// ovn-trace --detailed output (OVN 23.03's format) into stages and a verdict.
import { describe, expect, it } from 'vitest';
import { ovnMicroflow, parseOvnTrace, renderOvnStages } from '../../agent/explain/ovn-trace.js';

const DELIVERED = `# tcp,reg14=0x2,vlan_tci=0x0000,dl_src=0a:58:0a:80:00:05,dl_dst=0a:58:0a:80:00:01,nw_src=10.128.0.5,nw_dst=10.128.0.8,nw_ttl=64,tp_src=40000,tp_dst=8080

ingress(dp="pods", inport="pod1")
---------------------------------
 0. ls_in_check_port_sec (northd.c:8432): 1, priority 50, uuid 84b5523b
    reg0[15] = check_in_port_sec();
    next;
25. ls_in_l2_lkup (northd.c:9193): eth.dst == 0a:58:0a:80:00:01, priority 50, uuid 4be10741
    outport = "stor-pods";
    output;

egress(dp="pods", inport="pod1", outport="stor-pods")
-----------------------------------------------------
 9. ls_out_apply_port_sec (northd.c:5777): 1, priority 0, uuid a03e057f
    output;
    /* output to "stor-pods", type "patch" */

ingress(dp="ovn_cluster_router", inport="rtos-pods")
----------------------------------------------------
13. lr_in_ip_routing (northd.c:10388): ip4.dst == 10.128.0.0/24, priority 74, uuid dd2374dc
    ip.ttl--;
    outport = "rtos-pods";
    next;

egress(dp="pods", inport="stor-pods", outport="pod4")
-----------------------------------------------------
 9. ls_out_apply_port_sec (northd.c:5777): 1, priority 0, uuid a03e057f
    output;
    /* output to "pod4", type "" */
`;

const ACL_DROP = `# tcp,reg14=0x2
ingress(dp="pods", inport="pod1")
---------------------------------
 0. ls_in_check_port_sec (northd.c:8432): 1, priority 50, uuid 84b5523b
    reg0[15] = check_in_port_sec();
    next;
 8. ls_in_acl (northd.c:6860): ip && (!ct.est || (ct.est && ct_mark.blocked == 1)) && (tcp.dst == 9999), priority 2001, uuid 1c0ffee1
    drop;
`;

describe('ovn-trace microflow', () => {
  it('names the inport, both MACs and addresses, TTL and the L4 ports', () => {
    expect(ovnMicroflow({ inport: 'ns_pod', ethSrc: '0a:58:0a:80:00:05', ethDst: '0a:58:0a:80:00:01', family: 4, src: '10.128.0.5', dst: '10.0.0.1', protocol: 'tcp', sport: 1, dport: 80 }))
      .toBe('inport == "ns_pod" && eth.src == 0a:58:0a:80:00:05 && eth.dst == 0a:58:0a:80:00:01 && ip4.src == 10.128.0.5 && ip4.dst == 10.0.0.1 && ip.ttl == 64 && tcp && tcp.src == 1 && tcp.dst == 80');
    expect(ovnMicroflow({ inport: 'p"x', ethSrc: 'a', ethDst: 'b', family: 6, src: 'fd00::5', dst: 'fd00::8', protocol: 'icmpv6', sport: null, dport: null }))
      .toBe('inport == "px" && eth.src == a && eth.dst == b && ip6.src == fd00::5 && ip6.dst == fd00::8 && ip.ttl == 64 && icmp6.type == 128 && icmp6.code == 0');
  });
});

describe('parseOvnTrace', () => {
  it('follows patch ports to the final output port', () => {
    const t = parseOvnTrace(DELIVERED);
    expect(t.pipelines.map((p) => `${p.direction} ${p.datapath} ${p.stages.length}`)).toEqual(['ingress pods 2', 'egress pods 1', 'ingress ovn_cluster_router 1', 'egress pods 1']);
    expect(t.pipelines[0]?.stages[1]).toMatchObject({ table: 25, name: 'ls_in_l2_lkup', match: 'eth.dst == 0a:58:0a:80:00:01', priority: 50 });
    expect(t.verdict).toEqual({ kind: 'delivered', port: 'pod4', type: '' });
    expect(renderOvnStages(t)).toContain('    25. ls_in_l2_lkup: eth.dst == 0a:58:0a:80:00:01 → outport = "stor-pods"; output;');
  });
  it('names the stage that drops (an ACL)', () => {
    const t = parseOvnTrace(ACL_DROP);
    expect(t.verdict.kind).toBe('dropped');
    expect(t.verdict.kind === 'dropped' && t.verdict.stage?.name).toBe('ls_in_acl');
    expect(t.verdict.kind === 'dropped' && t.verdict.why).toContain('(tcp.dst == 9999)` (priority 2001) and drops');
  });
  it('no pipeline at all: dropped before the first stage (the inport port security)', () => {
    const t = parseOvnTrace('# icmp,reg14=0x2,dl_src=0a:58:0a:80:00:63\n');
    expect(t.verdict).toMatchObject({ kind: 'dropped', stage: null });
    expect(t.verdict.kind === 'dropped' && t.verdict.why).toContain('port security');
  });
  it('a pipeline that never outputs is an implicit drop after its last stage', () => {
    const t = parseOvnTrace('ingress(dp="pods", inport="p")\n---\n 5. ls_in_pre_lb (northd.c:1): 1, priority 0, uuid x\n    next;\n');
    expect(t.verdict).toMatchObject({ kind: 'dropped', why: 'no stage output it after ls_in_pre_lb (implicit drop)' });
  });
});
