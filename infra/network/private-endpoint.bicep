// One private endpoint with its private DNS zone, so the resource's usual host name
// (e.g. <account>.queue.core.windows.net) resolves to a private address inside the VNet.
// Used for the storage account's blob, queue and table services, the Key Vault and the
// function app (main.bicep, vnetEnabled).

param name string
param location string
param tags object = {}

@description('Resource id of the VNet whose subnet holds the endpoint; the DNS zone is linked to it.')
param vnetId string
param subnetId string

@description('Resource the endpoint reaches.')
param targetResourceId string

@description('Sub-resource: blob, queue, table, vault or sites.')
param groupId string

@description('Private DNS zone for that sub-resource, e.g. privatelink.queue.core.windows.net.')
param dnsZoneName string

resource zone 'Microsoft.Network/privateDnsZones@2020-06-01' = {
  name: dnsZoneName
  location: 'global'
  tags: tags
}

resource zoneLink 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2020-06-01' = {
  parent: zone
  name: '${name}-link'
  location: 'global'
  tags: tags
  properties: {
    registrationEnabled: false
    virtualNetwork: {
      id: vnetId
    }
  }
}

resource endpoint 'Microsoft.Network/privateEndpoints@2024-01-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    subnet: {
      id: subnetId
    }
    privateLinkServiceConnections: [
      {
        name: name
        properties: {
          privateLinkServiceId: targetResourceId
          groupIds: [
            groupId
          ]
        }
      }
    ]
  }
}

resource zoneGroup 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2024-01-01' = {
  parent: endpoint
  name: 'default'
  properties: {
    privateDnsZoneConfigs: [
      {
        name: replace(dnsZoneName, '.', '-')
        properties: {
          privateDnsZoneId: zone.id
        }
      }
    ]
  }
}

output id string = endpoint.id
