/* The one table of CRI methods: path, message types, handler. Adding an RPC
 * is one row here and one function in a *_service.c file. Rows with no
 * handler answer UNIMPLEMENTED naming the method. */
#include <errno.h>
#include <string.h>

#include "server/handlers.h"
#include "server/server.h"

#define ROW(svc, name, req, resp, fn, strm, sfn)                                 \
	{                                                                        \
		"/runtime.v1." svc "/" #name, &runtime__v1__##req##__descriptor, \
		    &runtime__v1__##resp##__descriptor, fn, sfn, strm            \
	}
#define RT(name, req, resp, fn) ROW("RuntimeService", name, req, resp, fn, false, NULL)
#define RT_STREAM(name, req, resp, fn) ROW("RuntimeService", name, req, resp, NULL, true, fn)
#define IMG(name, req, resp, fn) ROW("ImageService", name, req, resp, fn, false, NULL)
#define IMG_STREAM(name, req, resp, fn) ROW("ImageService", name, req, resp, NULL, true, fn)

const struct srv_method srv_methods[] = {
    RT(Version, version_request, version_response, srv_version),
    RT(RunPodSandbox, run_pod_sandbox_request, run_pod_sandbox_response, srv_run_pod_sandbox),
    RT(StopPodSandbox, stop_pod_sandbox_request, stop_pod_sandbox_response, srv_stop_pod_sandbox),
    RT(RemovePodSandbox, remove_pod_sandbox_request, remove_pod_sandbox_response,
       srv_remove_pod_sandbox),
    RT(PodSandboxStatus, pod_sandbox_status_request, pod_sandbox_status_response,
       srv_pod_sandbox_status),
    RT(ListPodSandbox, list_pod_sandbox_request, list_pod_sandbox_response, srv_list_pod_sandbox),
    RT_STREAM(StreamPodSandboxes, stream_pod_sandboxes_request, stream_pod_sandboxes_response,
	      srv_stream_pod_sandboxes),
    RT(CreateContainer, create_container_request, create_container_response, srv_create_container),
    RT(StartContainer, start_container_request, start_container_response, srv_start_container),
    RT(StopContainer, stop_container_request, stop_container_response, srv_stop_container),
    RT(RemoveContainer, remove_container_request, remove_container_response, srv_remove_container),
    RT(ListContainers, list_containers_request, list_containers_response, srv_list_containers),
    RT_STREAM(StreamContainers, stream_containers_request, stream_containers_response,
	      srv_stream_containers),
    RT(ContainerStatus, container_status_request, container_status_response, srv_container_status),
    RT(UpdateContainerResources, update_container_resources_request,
       update_container_resources_response, srv_update_container_resources),
    RT(ReopenContainerLog, reopen_container_log_request, reopen_container_log_response,
       srv_reopen_container_log),
    RT(ExecSync, exec_sync_request, exec_sync_response, srv_exec_sync),
    RT(Exec, exec_request, exec_response, srv_exec),
    RT(Attach, attach_request, attach_response, srv_attach),
    RT(PortForward, port_forward_request, port_forward_response, srv_port_forward),
    RT(ContainerStats, container_stats_request, container_stats_response, srv_container_stats),
    RT(ListContainerStats, list_container_stats_request, list_container_stats_response,
       srv_list_container_stats),
    RT_STREAM(StreamContainerStats, stream_container_stats_request, stream_container_stats_response,
	      srv_stream_container_stats),
    RT(PodSandboxStats, pod_sandbox_stats_request, pod_sandbox_stats_response,
       srv_pod_sandbox_stats),
    RT(ListPodSandboxStats, list_pod_sandbox_stats_request, list_pod_sandbox_stats_response,
       srv_list_pod_sandbox_stats),
    RT_STREAM(StreamPodSandboxStats, stream_pod_sandbox_stats_request,
	      stream_pod_sandbox_stats_response, srv_stream_pod_sandbox_stats),
    RT(UpdateRuntimeConfig, update_runtime_config_request, update_runtime_config_response,
       srv_update_runtime_config),
    RT(Status, status_request, status_response, srv_status),
    RT(CheckpointContainer, checkpoint_container_request, checkpoint_container_response, NULL),
    RT_STREAM(GetContainerEvents, get_events_request, container_event_response,
	      srv_get_container_events),
    RT(ListMetricDescriptors, list_metric_descriptors_request, list_metric_descriptors_response,
       srv_list_metric_descriptors),
    RT(ListPodSandboxMetrics, list_pod_sandbox_metrics_request, list_pod_sandbox_metrics_response,
       srv_list_pod_sandbox_metrics),
    RT_STREAM(StreamPodSandboxMetrics, stream_pod_sandbox_metrics_request,
	      stream_pod_sandbox_metrics_response, srv_stream_pod_sandbox_metrics),
    RT(RuntimeConfig, runtime_config_request, runtime_config_response, srv_runtime_config),
    RT(UpdatePodSandboxResources, update_pod_sandbox_resources_request,
       update_pod_sandbox_resources_response, srv_update_pod_sandbox_resources),

    IMG(ListImages, list_images_request, list_images_response, srv_list_images),
    IMG_STREAM(StreamImages, stream_images_request, stream_images_response, srv_stream_images),
    IMG(ImageStatus, image_status_request, image_status_response, srv_image_status),
    {"/runtime.v1.ImageService/PullImage", &runtime__v1__pull_image_request__descriptor,
     &runtime__v1__pull_image_response__descriptor, srv_pull_image, NULL, false, SRV_POOL_PULL},
    IMG(RemoveImage, remove_image_request, remove_image_response, srv_remove_image),
    IMG(ImageFsInfo, image_fs_info_request, image_fs_info_response, srv_image_fs_info),
};
const size_t srv_methods_count = ARRAY_SIZE(srv_methods);

const struct srv_method *srv_method_find(const char *path)
{
	for (size_t i = 0; i < srv_methods_count; i++)
		if (streq(srv_methods[i].path, path))
			return &srv_methods[i];
	return NULL;
}

int srv_methods_verify(struct husk_error *err)
{
	const ProtobufCServiceDescriptor *services[] = {
	    &runtime__v1__runtime_service__descriptor,
	    &runtime__v1__image_service__descriptor,
	};
	size_t total = 0;
	for (size_t s = 0; s < ARRAY_SIZE(services); s++) {
		const ProtobufCServiceDescriptor *svc = services[s];
		for (unsigned i = 0; i < svc->n_methods; i++) {
			const ProtobufCMethodDescriptor *m = &svc->methods[i];
			_cleanup_free_ char *path = xasprintf("/%s/%s", svc->name, m->name);
			const struct srv_method *row = srv_method_find(path);
			if (!row)
				return husk_error_set(err, EINVAL, "method table: no row for '%s'",
						      path);
			if (row->input != m->input || row->output != m->output)
				return husk_error_set(
				    err, EINVAL, "method table: '%s' has the wrong message types",
				    path);
			if (row->server_streaming ? row->unary != NULL : row->stream != NULL)
				return husk_error_set(
				    err, EINVAL, "method table: '%s' has the wrong handler kind",
				    path);
		}
		total += svc->n_methods;
	}
	if (total != srv_methods_count)
		return husk_error_set(err, EINVAL,
				      "method table: %zu rows but the services define %zu methods",
				      srv_methods_count, total);
	return 0;
}
