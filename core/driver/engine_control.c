/*
 * engine_control.c — what an engine tells `srmudp status`: its JSON document,
 * served on the control socket (control.c) from the engine thread.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "control.h"
#include "engine.h"
#include "log.h"

static const char *bridge_state(const struct bridge *b)
{
	if (b->state == SRM_ERR_AGAIN)
		return "opening";
	if (b->fd_eof && b->peer_fin)
		return "closing";
	if (b->fd_eof)
		return "half-closed-local";
	if (b->peer_fin)
		return "half-closed-remote";
	return "open";
}

/* "drops":{...}'s members, one per reason. */
static void put_drops(struct json_out *d, const uint64_t drops[SRM_DROP_REASONS])
{
	for (int r = 0; r < SRM_DROP_REASONS; r++)
		json_out_printf(d, "%s\"%s\":%llu", r ? "," : "",
				srm_drop_reason_name((enum srm_drop_reason)r),
				(unsigned long long)drops[r]);
}

/* "refused":{...}'s members: streams peers opened that we refused. */
static void put_refused(struct json_out *d, const uint64_t refused[SRM_REFUSALS])
{
	for (int r = SRM_REFUSED_NONE + 1; r < SRM_REFUSALS; r++)
		json_out_printf(d, "%s\"%s\":%llu", r > SRM_REFUSED_NONE + 1 ? "," : "",
				srm_refusal_name((enum srm_refusal)r),
				(unsigned long long)refused[r]);
}

static void put_peer(struct json_out *d, const struct srm_engine *e, struct peer *p,
		     uint64_t now_ms)
{
	struct srm_peer_stats st;
	memset(&st, 0, sizeof(st));
	if (p->conn)
		conn_get_stats(p->conn, &st);
	char key[SRM_PUBKEY_TEXT_BYTES], addr[64] = "";
	srm_pubkey_encode(p->cfg.pubkey, key);
	const struct path_addr *path = path_active(p->paths);
	if (path->kind == PATH_UDP)
		engine_addr_text(&path->addr, addr, sizeof(addr));
	else if (path->kind == PATH_VIA && path->sock < e->peer_count)
		snprintf(addr, sizeof(addr), "%s", e->peers[path->sock].cfg.name);
	json_out_printf(d, "{\"name\":");
	json_out_string(d, p->cfg.name);
	json_out_printf(d,
			",\"key\":\"%s\",\"fingerprint\":\"%.8s\",\"instance\":%s,"
			"\"established\":%s,",
			key, key, p->extra ? "\"extra\"" : "\"configured\"",
			session_established(p->session) ? "true" : "false");
	static const char *const kinds[] = { [PATH_NONE] = "none", [PATH_UDP] = "direct",
					     [PATH_RDV_RELAY] = "relayed", [PATH_WS_RELAY] = "relay-ws",
					     [PATH_VIA] = "via" };
	json_out_printf(d, "\"path\":{\"kind\":\"%s\",\"address\":\"%s\"},", kinds[path->kind],
			addr);
	uint64_t age = session_handshake_age_ms(p->session, now_ms);
	json_out_printf(d, "\"handshake_age_ms\":%lld,",
			age == UINT64_MAX ? -1LL : (long long)age);
	json_out_printf(d, "\"cipher\":\"%s\",", session_cipher_name(p->session));
	/* Without transport state (the session ended) there is no RTT to
	 * tell, not one of 0. */
	if (p->conn)
		json_out_printf(d, "\"rtt_ms\":%.3f,\"rttvar_ms\":%.3f,\"min_rtt_ms\":%.3f,",
				st.srtt_us / 1000.0, st.rttvar_us / 1000.0, st.min_rtt_us / 1000.0);
	double loss = st.packets_sent ? (double)st.packets_lost / (double)st.packets_sent : 0;
	json_out_printf(d, "\"loss\":%.5f,\"cwnd_bytes\":%llu,\"pmtu\":%u,", loss,
			(unsigned long long)st.cwnd_bytes, st.pmtu);
	json_out_printf(d,
			"\"bytes_out\":%llu,\"bytes_in\":%llu,\"stream_bytes_out\":%llu,"
			"\"stream_bytes_in\":%llu,",
			(unsigned long long)st.bytes_sent, (unsigned long long)st.bytes_received,
			(unsigned long long)st.stream_bytes_sent,
			(unsigned long long)st.stream_bytes_received);
	/* Application bytes per wire byte: above 1 when compression wins. */
	double ratio = st.bytes_sent ? (double)st.stream_bytes_sent / (double)st.bytes_sent : 0;
	json_out_printf(d, "\"compression_ratio\":%.3f,\"drops\":{", ratio);
	put_drops(d, p->drops);
	json_out_printf(d, "},\"refused\":{");
	put_refused(d, p->refused);
	json_out_printf(d,
			"},\"packets_out\":%llu,\"packets_in\":%llu,\"packets_lost\":%llu,"
			"\"packets_retransmitted\":%llu,\"early_opens\":%llu,\"streams\":[",
			(unsigned long long)st.packets_sent, (unsigned long long)st.packets_received,
			(unsigned long long)st.packets_lost,
			(unsigned long long)st.packets_retransmitted,
			(unsigned long long)st.early_opens);
	const char *sep = "";
	struct bridge *b, *tmp;
	HASH_ITER(hh_peer, p->bridges, b, tmp) {
		json_out_printf(d,
				"%s{\"id\":%llu,\"port\":%u,\"direction\":\"%s\",\"state\":\"%s\"}",
				sep, (unsigned long long)b->stream_id,
				b->listen_port ? b->listen_port : b->open_port,
				b->listen_port ? "in" : "out", bridge_state(b));
		sep = ",";
	}
	json_out_printf(d, "]}");
}

/* The document; json_out stops at JSON_OUT_MAX (10,000 streams fit). */
static void put_document(struct json_out *d, void *ctx)
{
	struct srm_engine *e = ctx;
	uint8_t pub[SRM_KEY_BYTES];
	char key[SRM_PUBKEY_TEXT_BYTES];
	identity_public_key(e->identity, pub);
	srm_pubkey_encode(pub, key);
	uint64_t now_ms = clock_now_ms();
	control_doc_begin(d);
	json_out_printf(d, ",\"key\":\"%s\",\"udp_port\":%d,\"uptime_ms\":%llu,", key,
			srm_engine_udp_port(e), (unsigned long long)(now_ms - e->started_ms));
	struct rdv_endpoint reflexive;
	char rtext[64] = "";
	bool registered = e->rdv && rdv_client_registered(e->rdv, now_ms, &reflexive);
	if (registered)
		rdv_endpoint_str(&reflexive, rtext, sizeof(rtext));
	char stext[64] = "";
	if (e->rdv_server_len)
		engine_addr_text(&e->rdv_server, stext, sizeof(stext));
	json_out_printf(d,
			"\"rendezvous\":{\"configured\":%s,\"registered\":%s,"
			"\"public_address\":\"%s\",\"server\":\"%s\",\"other_gates\":[",
			e->rdv ? "true" : "false", registered ? "true" : "false", rtext, stext);
	/* Our registrations with our other gates (engine_rdv.c). */
	const char *gsep = "";
	for (size_t k = 0; k < e->gate_reg_count; k++) {
		const struct gate_reg *g = &e->gate_regs[k];
		if (g->server == e->rdv_at)
			continue;
		engine_addr_text(&g->addr, stext, sizeof(stext));
		json_out_printf(d, "%s{\"gate\":\"%s\",\"registered\":%s}", gsep, stext,
				rdv_client_registered(g->c, now_ms, NULL) ? "true" : "false");
		gsep = ",";
	}
	json_out_printf(d, "]},");
	struct srm_ws_stats ws;
	const char *state, *url, *error;
	engine_ws_stats(e, &ws, &state, &url, &error);
	json_out_printf(d, "\"relay_ws\":{\"state\":\"%s\",\"url\":", state);
	json_out_string(d, url);
	json_out_printf(d, ",\"last_error\":");
	json_out_string(d, error);
	json_out_printf(d,
			",\"attempts\":%llu,\"connects\":%llu,\"failures\":%llu,"
			"\"messages_out\":%llu,\"messages_in\":%llu,\"bytes_out\":%llu,"
			"\"bytes_in\":%llu,\"queue_drops\":%llu,\"malformed\":%llu,\"queued\":%zu},",
			(unsigned long long)ws.attempts, (unsigned long long)ws.connects,
			(unsigned long long)ws.failures, (unsigned long long)ws.tx_messages,
			(unsigned long long)ws.rx_messages, (unsigned long long)ws.tx_bytes,
			(unsigned long long)ws.rx_bytes, (unsigned long long)ws.queue_drops,
			(unsigned long long)ws.malformed, ws.queued);
	json_out_printf(d, "\"via\":{\"forwarded\":%llu,\"forwarded_bytes\":%llu,\"received\":%llu,"
			   "\"refused\":%llu},",
			(unsigned long long)e->via_stats.forwarded,
			(unsigned long long)e->via_stats.forwarded_bytes,
			(unsigned long long)e->via_stats.received, (unsigned long long)e->via_stats.refused);
	if (e->gate) {
		json_out_printf(d, "\"gate\":{");
		rdv_put_status(d, e->gate, e->gate_ws, now_ms);
		json_out_printf(d, "},");
	}
	json_out_printf(d, "\"packets_in\":%llu,\"packets_out\":%llu,\"drops\":{",
			(unsigned long long)e->stats.packets_received,
			(unsigned long long)e->stats.packets_sent);
	put_drops(d, e->stats.drops);
	json_out_printf(d, "},\"refused\":{");
	put_refused(d, e->stats.refused);
	json_out_printf(d, "},\"peers\":[");
	const char *sep = "";
	for (size_t i = 0; i < engine_slot_count(e); i++) {
		if (!engine_slot(e, i)->session)
			continue;
		json_out_printf(d, "%s", sep);
		put_peer(d, e, engine_slot(e, i), now_ms);
		sep = ",";
	}
	json_out_printf(d, "]}\n");
}

int engine_control_open(struct srm_engine *e)
{
	int fd = control_listen(e->control_path, sizeof(e->control_path));
	if (fd < 0) {
		if (fd != SRM_ERR_INVALID)
			LOG_WARN(NULL, "no control socket: runtime directory %s is unusable",
				 e->control_path);
		e->control_path[0] = '\0';
		return fd;
	}
	e->control_fd = engine_fd_adopt(e, fd);
	e->control_tag.kind = EV_CONTROL;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &e->control_tag };
	epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->control_fd, &ev);
	return 0;
}

void engine_control_close(struct srm_engine *e)
{
	if (e->control_fd >= 0) {
		engine_fd_close(e, e->control_fd);
		e->control_fd = -1;
	}
	control_remove(e->control_path);
}

static void put_status(struct json_out *d, void *ctx)
{
	struct srm_engine *e = ctx;
	pthread_mutex_lock(&e->lock);
	put_document(d, e);
	pthread_mutex_unlock(&e->lock);
}

void engine_control_serve(struct srm_engine *e)
{
	static const struct control_ops ops = { put_status, engine_reload_request };
	control_serve(e->control_fd, &ops, e);
}
